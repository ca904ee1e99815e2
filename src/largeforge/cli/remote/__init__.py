"""Commands that talk to a control plane (``largeforge --server URL …``) through
:class:`largeforge.clients.PlatformClient`: jobs, projects, datasets, deployments, login.

They are thin: parse, call the client, print. Nothing here imports server code, so they work
against any LargeForge server the user can reach.
"""
