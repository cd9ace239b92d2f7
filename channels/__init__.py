"""Custom Rasa input channels (registered in credentials.yml)."""

from clinic import log_privacy

# Rasa imports the channels while starting the server: from then on no log
# line of the process shows a phone number or a name in clear.
log_privacy.install()
