"""The closed-loop demo as a plugin (loaded by every Herald process, like the capabilities):
ONE ``demo.requested`` message drives fine-tune → evaluate → register → promote → deploy →
serve → drift → retrain → evaluate → promote → canary → rollout, with the real sensors and
jobs of each step and only smaller settings. See :mod:`herald.demo.sensors` and
docs/guides/monitoring.md#herald-demo."""
