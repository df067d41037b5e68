"""The participant's side of the competition service: credentials, the HTTP API client, pushing images."""
