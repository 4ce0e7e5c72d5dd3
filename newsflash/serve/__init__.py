"""`newsflash serve`: the small web app partners and SendGrid reach after a send.

One-click unsubscribe (RFC 8058) with signed tokens, SendGrid's signed Event Webhook, and a
health check; it writes only to the suppression and event stores in state/.
"""
