"""Weather and civil-protection alerts: CAP documents and feeds, area matching, alert posts."""
