export { dashboard, type Dashboard, type DashboardOptions } from "./app.js";
export type { DashboardAuth } from "./security.js";
