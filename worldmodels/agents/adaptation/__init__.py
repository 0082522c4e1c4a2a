"""Scenario adaptation: SAC in a target scenario on real and model transitions, MBPO-style."""
