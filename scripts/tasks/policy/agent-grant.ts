// agent:grant — see agent.ts.
export { agentGrant as default } from "./agent.ts";
