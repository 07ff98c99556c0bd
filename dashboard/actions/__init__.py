"""Changing things: the access rule and the audit log every change passes, each admin action
(a plan said before, then an audited run), and the mover behind the actions that move messages."""
