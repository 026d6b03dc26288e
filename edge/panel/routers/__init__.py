"""One router per panel screen."""
