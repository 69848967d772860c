"""The `jobsvc` command: sits on top of jobsvc, workers and admin_api."""
