"""The rollout console: server-rendered pages of the cloud service under /console."""
