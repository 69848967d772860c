"""What operators see and do, for the admin API, the dashboard and the CLI: reads (`listing`, `lookup`, `metrics`,
`timeseries`, `workers_info`), bulk operations (`bulk/`: retry, prune, TTL and integrity sweeps), API keys
(`apikeys`), the audit log (`audit`) and the masking of secrets in what people see (`redact`). All of it is the
Redis side: admin_api/ and jobsvc_cli/ call these functions and never send a Redis command themselves."""
