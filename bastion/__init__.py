"""The `bastion` command line: one front door to every service and tool."""
