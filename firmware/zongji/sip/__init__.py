"""SIP for the switchboard core: messages, digest authentication, transactions, dialogs."""
