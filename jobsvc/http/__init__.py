"""jobsvc and HTTP: the SSRF guard for handler and callback URLs (`urlguard/`), signatures on what jobsvc sends
(`signing`), pull workers that take jobs over HTTP (`pull`) and the outbox of outcome notifications
(`notifications`). The Redis side only: admin_api/ serves the endpoints and workers/ sends the requests."""
