"""The appliance's SIP side: Switch (the one object a shell drives), the forking proxy for phone
calls, the trunk gateway (B2BUA) and registration, the registrar and the failed-auth guard.
Built on zongji.sip (the stack) and zongji.call (what a call should do).
"""
