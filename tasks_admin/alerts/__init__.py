"""Alerts: rules measured against the history, notices sent by webhook and email.

``evaluate.evaluate_rules`` (run by the collector's AlertPoller) measures every enabled
rule, opens and resolves ``AlertState`` rows and sends through ``deliver``. Rules change
through ``services.alert_rule_*`` only (admin role, audited).
"""
