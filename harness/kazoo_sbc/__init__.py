"""Kazoo's own Kamailio configuration (2600Hz kazoo-configs-kamailio) as a target of the harness."""
