// agent:revoke — see agent.ts.
export { agentRevoke as default } from "./agent.ts";
