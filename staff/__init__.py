"""The staff console: clinic staff review what the assistant could not answer,
teach it, retrain behind a regression gate, and publish or roll back.

`python -m staff serve` (`make staff`) starts it; `python -m staff --help`
lists the same steps for the command line. Nothing here imports Rasa:
training, the gate and evaluation run as subprocesses, and the live Rasa
servers are reached over their token-protected HTTP API.
"""
