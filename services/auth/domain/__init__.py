"""Pure auth rules: usernames, passwords, hashing, sessions and lockout."""
