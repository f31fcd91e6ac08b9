"""`zongji dtmf decode FILE`: the device's own DTMF detector over a recording."""

import json
import sys
import wave
from array import array

import click

from zongji_companion.cli import ZongjiError, main

RATE = 8000
SOX_HINT = "convert it first: sox IN.wav -r 8000 -c 1 -b 16 OUT.wav"


@main.group("dtmf")
def dtmf_group():
    """DTMF tones in recordings, found by the detector the device runs."""


def _read_wav(path):
    try:
        with wave.open(path, "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            if (rate, channels, width) != (RATE, 1, 2):
                raise ZongjiError(
                    "%s is %d Hz, %d channel(s), %d-bit; the detector needs 8000 Hz mono 16-bit: %s"
                    % (path, rate, channels, 8 * width, SOX_HINT)
                )
            data = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise ZongjiError(
            "%s is not a WAV file this can read (%s); for headerless audio use --raw, --alaw or --ulaw" % (path, e)
        ) from None
    return data


def _pcm(data):
    pcm = array("h")
    pcm.frombytes(data[: len(data) & ~1])
    if sys.byteorder == "big":  # pragma: no cover
        pcm.byteswap()
    return pcm


@dtmf_group.command("decode")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--raw", "fmt", flag_value="raw", help="FILE is headerless 8 kHz signed 16-bit little-endian.")
@click.option("--alaw", "fmt", flag_value="alaw", help="FILE is headerless 8 kHz G.711 A-law (PCMA).")
@click.option("--ulaw", "fmt", flag_value="ulaw", help="FILE is headerless 8 kHz G.711 µ-law (PCMU).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: file, seconds, digits.")
def decode_cmd(file, fmt, as_json):
    """Print the DTMF digits in FILE, each with the time its tone starts.

    FILE is a WAV (8 kHz, mono, 16-bit), or headerless audio with --raw, --alaw or --ulaw.
    The detector is the device's own (zongji.media.dtmf): what it hears here, a caller's
    key presses reach the attendant the same way.

    \b
    Example:
      $ zongji dtmf decode call.wav
      0.480s  5
      1.120s  #
      $ sox call.mp3 -r 8000 -c 1 -b 16 call.wav     (other formats: convert first)

    Exit status: 0 when the file was read, digits or not (no digits: nothing on stdout, a
    note on stderr; --json gives an empty list), 1 when it could not be read.
    """
    from zongji.media import dtmf, g711

    try:
        with open(file, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ZongjiError("can't read %s: %s" % (file, e.strerror)) from None
    if fmt is None:
        if data[:4] != b"RIFF":
            raise ZongjiError(
                "%s is not a WAV file; for headerless audio say which: --raw (8 kHz signed "
                "16-bit), --alaw or --ulaw" % file
            )
        pcm = _pcm(_read_wav(file))
    elif fmt == "raw":
        pcm = _pcm(data)
    else:
        pcm = g711.decode(g711.PCMA if fmt == "alaw" else g711.PCMU, data)
    got = dtmf.decode(pcm)
    seconds = len(pcm) / RATE
    if as_json:
        out = {"file": file, "seconds": seconds, "digits": [{"digit": d, "start": s / RATE} for d, s in got]}
        click.echo(json.dumps(out, indent=2))
    else:
        for d, s in got:
            click.echo("%.3fs  %s" % (s / RATE, d))
        if not got:
            click.echo("no DTMF digits in %s (%.1f s of audio)" % (file, seconds), err=True)
