"""The real engine behind the supervisor's ``LinkFactory`` (implementation: ``connector.engine.adapter``)."""

from connector.engine.adapter import EngineLink, EngineLinkFactory

__all__ = ["EngineLink", "EngineLinkFactory"]
