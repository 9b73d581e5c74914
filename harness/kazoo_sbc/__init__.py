"""Kazoo's own Kamailio configuration (kazoo-configs-kamailio) ported to run on Debian's Kamailio 5.6."""
