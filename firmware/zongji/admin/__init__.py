"""The admin protocol: how the companion reads and changes a device, sans-IO (issue `sync`).

    sign        HMAC-SHA256 request and response signatures, shared by the device and the CLI
    protocol    Admin: one request in (method, path, headers, body), one response out; the
                operations (status, bundle, call records, prompts, rollback, reboot) run
                against a backend the shell gives it (zongji.shell.config.SiteStore)
    frames      the serial link's framing (length, CRC, retries) for the REPL UART

Transports carry requests as they are: HTTP (microdot, zongji.shell.admin_http) and framed
serial (zongji.shell.admin_serial). Neither knows the operations; Admin knows no transport.
"""
