"""WhatsApp Web server simulator: real websockets, simulated phones, fault injection.

Start with ``simulator/README.md``; ``simulator.testing`` has the helpers tests use.
"""
