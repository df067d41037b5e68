"""The participant's side of the competition service: credentials, the HTTP API client, pushing images."""

from harness.client.api import ServiceClient, ServiceError, service_url
from harness.client.credentials import Credentials, NotLoggedIn, credentials_path, load_credentials, save_credentials
from harness.client.kit import pull_kit
from harness.client.push import Pushed, PushError, push_image, target_name
from harness.client.text import shown, shown_log

__all__ = [
    "Credentials",
    "NotLoggedIn",
    "PushError",
    "Pushed",
    "ServiceClient",
    "ServiceError",
    "credentials_path",
    "load_credentials",
    "pull_kit",
    "push_image",
    "save_credentials",
    "service_url",
    "shown",
    "shown_log",
    "target_name",
]
