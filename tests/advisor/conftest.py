from tests.advisor.webhook import webhook

__all__ = ["webhook"]
