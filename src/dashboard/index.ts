// The dashboard as a library (docs/dashboard.md): create a decision log, hand its sink to the gateway
// (GatewayOptions.decisions), then startDashboard with the sources of the running process.
export { controllerSources, gatewaySources, upSources } from './attach.ts';
export { createDecisionLog, type DecisionLog, type DecisionLogOptions } from '../gateway/decision-log.ts';
export {
  DASHBOARD_FLAG_OPTIONS,
  DASHBOARD_USAGE,
  type DashboardPlan,
  dashboardLines,
  launchDashboard,
  parseDashboardAddress,
  prepareDashboard,
  readDashboardToken,
} from './flag.ts';
export { type DashboardOptions, type RunningDashboard, startDashboard } from './server.ts';
export type { DashboardSources, LoadBalancerView } from './sources.ts';
