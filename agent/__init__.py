"""envattest agent: collects consented signals and signs evidence with a device key."""
