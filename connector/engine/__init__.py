"""The asyncio driver that runs the sans-I/O protocol client over a websocket (``driver.EngineSession``)."""
