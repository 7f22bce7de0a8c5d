#!/usr/bin/env python3
"""Drive a Keep service with the real, unchanged Arvados Python SDK.

Used by the Rust integration tests: no API server, no config file. The SDK is
pointed at our keepstore either with KeepClient(proxy="URL ...") (--proxy) or
through the ARVADOS_KEEP_SERVICES environment variable (--use-env).

Output: one JSON object per line on stdout, one per check, then a summary line
{"ok": bool, "checks": N, "failures": [...], ...}. Exit status 0 only when
every check passed, 1 when some check failed, 2 on a usage error. SDK log
messages go to stderr. See NOTES.md for what the SDK sends and expects.
"""

import argparse
import gc
import hashlib
import hmac
import json
import logging
import os
import random
import re
import sys
import time

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SIGNATURE_HINT_RE = re.compile(r"\+A([0-9a-f]{40})@([0-9a-f]{8})(?=\+|$)")
MAX_BLOCK = 1 << 26
# Warning logged by arvados.keep.KeepClient.put when a PUT answer lacks
# X-Keep-Storage-Classes-Confirmed.
CLASSES_WARNING = "X-Keep-Storage-Classes header not supported"


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Check a Keep service with the real Arvados Python SDK.")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--proxy", metavar="URLS",
        help="service root URL(s), space-separated; passed as KeepClient(proxy=...)")
    where.add_argument(
        "--use-env", action="store_true",
        help="use ARVADOS_KEEP_SERVICES from the environment (must be set)")
    ap.add_argument(
        "--token", default=None,
        help="API token sent as 'Authorization: Bearer T' "
             "(default: $ARVADOS_API_TOKEN)")
    ap.add_argument(
        "--sizes", default="0,1,4096,1048576",
        help="comma-separated block sizes in bytes, each 0..67108864")
    ap.add_argument(
        "--expect-signed", action="store_true",
        help="every PUT must answer a +A<40hex>@<8hex> locator; also check "
             "that a tampered signature is refused")
    ap.add_argument(
        "--copies", type=int, default=1,
        help="desired replicas passed to put() (X-Keep-Desired-Replicas); >= 1")
    ap.add_argument("--seed", default="0", help="seed for the random content")
    ap.add_argument(
        "--classes", default="",
        help="comma-separated storage classes passed to put() "
             "(X-Keep-Storage-Classes); default none")
    ap.add_argument(
        "--signing-key-file", default=None,
        help="optional: the server's blob signing key; then signatures are "
             "recomputed (HMAC-SHA1 md5@token@expiry@ttl) and compared, and "
             "the absent-block check uses a validly signed locator")
    ap.add_argument(
        "--signing-ttl", type=int, default=336 * 3600,
        help="signature TTL in seconds used with --signing-key-file "
             "(default 1209600 = 336h)")
    ap.add_argument(
        "--timeout", type=float, default=30.0,
        help="seconds: transfer aborts when slower than 32 KiB/s for this "
             "long (connect timeout is min(5, this))")
    ap.add_argument(
        "--num-retries", type=int, default=0,
        help="SDK retries per call (default 0; each retry waits >= 4 s)")
    a = ap.parse_args(argv)
    try:
        a.size_list = [int(s) for s in a.sizes.split(",") if s.strip() != ""]
    except ValueError:
        ap.error("--sizes must be a comma-separated list of integers")
    if not a.size_list:
        ap.error("--sizes is empty")
    for s in a.size_list:
        if s < 0 or s > MAX_BLOCK:
            ap.error("size %d out of range 0..%d" % (s, MAX_BLOCK))
    if a.copies < 1:
        ap.error("--copies must be >= 1 (the SDK sends nothing for 0)")
    if a.token is None:
        a.token = os.environ.get("ARVADOS_API_TOKEN")
    if not a.token:
        ap.error("--token is required (or set ARVADOS_API_TOKEN)")
    if a.use_env and not os.environ.get("ARVADOS_KEEP_SERVICES", "").strip():
        ap.error("--use-env needs ARVADOS_KEEP_SERVICES set and non-empty")
    a.class_list = [c.strip() for c in a.classes.split(",") if c.strip()]
    a.signing_key = None
    if a.signing_key_file:
        with open(a.signing_key_file, "rb") as f:
            a.signing_key = f.read().strip()
    return a


class WarningCollector(logging.Handler):
    """Keeps the SDK's warnings so that checks can look at them."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        try:
            self.messages.append(record.getMessage())
        except Exception:
            pass


class Runner:
    def __init__(self, args):
        self.args = args
        self.count = 0
        self.failures = []
        self.saw_signed = False   # did any PUT answer a signed locator?

    def record(self, check, ok, size=None, **fields):
        self.count += 1
        line = {"check": check, "ok": bool(ok)}
        if size is not None:
            line["size"] = size
        line.update(fields)
        print(json.dumps(line, sort_keys=False), flush=True)
        if not ok:
            label = check if size is None else "%s[%d]" % (check, size)
            self.failures.append("%s: %s" % (label, fields.get("error", "failed")))


def error_fields(exc):
    """Describe an SDK exception, with the HTTP status of each service."""
    out = {"exception": "%s.%s" % (type(exc).__module__, type(exc).__name__),
           "message": str(exc)[:500]}
    req_errors = getattr(exc, "request_errors", None)
    if callable(req_errors):
        statuses = {}
        for service, err in req_errors().items():
            statuses[str(service)] = getattr(err, "status_code", repr(err)[:200])
        out["service_status"] = statuses
    return out


def expected_signature(key, md5, token, expiry_hex, ttl):
    msg = "%s@%s@%s@%x" % (md5, token, expiry_hex, ttl)
    return hmac.new(key, msg.encode(), hashlib.sha1).hexdigest()


def sign_locator(key, md5, size, token, ttl):
    expiry = int(time.time()) + ttl
    exp_hex = "%08x" % expiry
    return "%s+%d+A%s@%s" % (md5, size, expected_signature(key, md5, token, exp_hex, ttl), exp_hex)


def tamper(locator):
    """Flip the first hex digit of the signature, keeping it 40 hex digits."""
    m = SIGNATURE_HINT_RE.search(locator)
    sig = m.group(1)
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    return locator[:m.start(1)] + flipped + locator[m.end(1):]


def make_client(args):
    import arvados
    import arvados.config
    import arvados.keep

    # Ignore any settings.conf found in the user's or the system's config
    # directories: only the environment counts (ARVADOS_* variables still
    # override, which is how ARVADOS_KEEP_SERVICES is read).
    arvados.config.initialize(os.devnull)
    timeout = (min(5.0, args.timeout), args.timeout, 32768)
    kwargs = dict(
        api_token=args.token,
        local_store="",          # never fall back to $KEEP_LOCAL_STORE
        num_retries=args.num_retries,
        timeout=timeout,
        proxy_timeout=timeout,
        num_prefetch_threads=0,
    )
    if args.use_env:
        kc = arvados.keep.KeepClient(**kwargs)
    else:
        kc = arvados.keep.KeepClient(proxy=args.proxy, **kwargs)
    return kc


def block_content(seed, index, size):
    return random.Random("%s/%d/%d" % (seed, index, size)).randbytes(size)


def check_block(r, kc, args, index, size, warnings):
    import arvados.errors

    data = block_content(args.seed, index, size)
    md5 = hashlib.md5(data).hexdigest()
    base = "%s+%d" % (md5, size)

    # PUT
    t0 = time.monotonic()
    warn_before = len(warnings.messages)
    try:
        loc = kc.put(data, copies=args.copies, classes=args.class_list or None)
    except Exception as e:
        r.record("put", False, size, error="put raised", **error_fields(e))
        return
    put_secs = round(time.monotonic() - t0, 3)
    if isinstance(loc, bytes):
        loc = loc.decode("utf-8", "replace")
    problems = []
    if not isinstance(loc, str):
        problems.append("put returned %r" % (loc,))
        loc = ""
    if not (loc == base or loc.startswith(base + "+")):
        problems.append("locator does not start with %s" % base)
    sig = SIGNATURE_HINT_RE.search(loc)
    if args.expect_signed and not sig:
        problems.append("locator has no +A<40hex>@<8hex> hint")
    try:
        arvados.keep.KeepLocator(loc)
    except Exception as e:
        problems.append("SDK KeepLocator rejects it: %s" % e)
    if sig and args.signing_key is not None:
        want = expected_signature(args.signing_key, md5, args.token, sig.group(2), args.signing_ttl)
        if want != sig.group(1):
            problems.append("signature differs from HMAC-SHA1(key, md5@token@expiry@ttl)")
        expiry = int(sig.group(2), 16)
        now = time.time()
        if not (now + args.signing_ttl - 600 <= expiry <= now + args.signing_ttl + 600):
            problems.append("expiry %s is not now+ttl" % sig.group(2))
    new_warnings = warnings.messages[warn_before:]
    if any(CLASSES_WARNING in w for w in new_warnings):
        problems.append("answer lacked X-Keep-Storage-Classes-Confirmed (SDK warned)")
    if sig:
        r.saw_signed = True
    r.record("put", not problems, size, locator=loc, secs=put_secs,
             signed=bool(sig), **({"error": "; ".join(problems)} if problems else {}))
    if not loc.startswith(base):
        return

    # GET with the locator as returned. Clear the SDK block cache first so the
    # request really reaches the server.
    kc.block_cache.clear()
    t0 = time.monotonic()
    try:
        got = kc.get(loc)
    except Exception as e:
        r.record("get", False, size, error="get raised", locator=loc, **error_fields(e))
    else:
        same = got == data
        r.record("get", same, size, secs=round(time.monotonic() - t0, 3),
                 **({} if same else {"error": "content mismatch (got %s bytes)" % (
                     len(got) if got is not None else None)}))
        del got
    kc.block_cache.clear()

    # HEAD
    try:
        h = kc.head(loc)
        r.record("head", h is True, size,
                 **({} if h is True else {"error": "head returned %r" % (h,)}))
    except Exception as e:
        r.record("head", False, size, error="head raised", **error_fields(e))

    # GET with a tampered signature must fail.
    if args.expect_signed and sig:
        bad = tamper(loc)
        kc.block_cache.clear()
        try:
            kc.get(bad)
        except arvados.errors.KeepReadError as e:
            r.record("get_tampered", True, size, locator=bad, **error_fields(e))
        except Exception as e:
            r.record("get_tampered", False, size, error="unexpected exception", **error_fields(e))
        else:
            r.record("get_tampered", False, size, locator=bad,
                     error="GET with a tampered signature succeeded")
        kc.block_cache.clear()
    del data
    gc.collect()


def check_absent(r, kc, args):
    """GET of a block that was never stored must raise NotFoundError.

    With signatures on (--expect-signed, or a PUT answered a signed locator),
    the locator needs a valid signature to get past the permission check
    (keepstore answers 400/401 otherwise, which the SDK reports as
    KeepReadError, not NotFoundError). Without --signing-key-file we cannot
    sign, so then any KeepReadError is accepted and the statuses reported.
    """
    import arvados.errors

    data = random.Random("%s/absent" % args.seed).randbytes(37)
    md5 = hashlib.md5(data).hexdigest()
    signing = args.expect_signed or r.saw_signed
    if signing and args.signing_key is not None:
        loc, strict = sign_locator(args.signing_key, md5, len(data), args.token, args.signing_ttl), True
    elif signing:
        loc, strict = "%s+%d" % (md5, len(data)), False
    else:
        loc, strict = "%s+%d" % (md5, len(data)), True
    kc.block_cache.clear()
    try:
        kc.get(loc)
    except arvados.errors.NotFoundError as e:
        r.record("get_absent", True, None, locator=loc, **error_fields(e))
    except arvados.errors.KeepReadError as e:
        if strict:
            r.record("get_absent", False, None, locator=loc,
                     error="KeepReadError instead of NotFoundError (want 404)", **error_fields(e))
        else:
            r.record("get_absent", True, None, locator=loc,
                     note="unsigned locator on a signing server: any read error accepted",
                     **error_fields(e))
    except Exception as e:
        r.record("get_absent", False, None, locator=loc, error="unexpected exception", **error_fields(e))
    else:
        r.record("get_absent", False, None, locator=loc, error="GET of an absent block succeeded")
    kc.block_cache.clear()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    r = Runner(args)
    summary = {"mode": "env" if args.use_env else "proxy"}
    try:
        import arvados
        import arvados.keep
        summary["sdk_version"] = getattr(arvados, "__version__", None) or \
            __import__("arvados._version", fromlist=["__version__"]).__version__
    except Exception as e:
        r.record("import_sdk", False, None, error="cannot import arvados", **error_fields(e))
        finish(r, summary)
    warnings = WarningCollector()
    logging.getLogger("arvados").addHandler(warnings)

    try:
        kc = make_client(args)
        services = [s["_service_root"] for s in kc._keep_services]
        summary["services"] = services
        ok = bool(kc.using_proxy) and bool(services)
        r.record("client", ok, None, services=services,
                 **({} if ok else {"error": "SDK did not take the services as proxies"}))
    except Exception as e:
        r.record("client", False, None, error="KeepClient() raised", **error_fields(e))
        finish(r, summary)

    t0 = time.monotonic()
    for index, size in enumerate(args.size_list):
        check_block(r, kc, args, index, size, warnings)
    check_absent(r, kc, args)
    summary["secs"] = round(time.monotonic() - t0, 3)
    finish(r, summary)


def finish(r, extra):
    out = {"ok": not r.failures and r.count > 0, "checks": r.count, "failures": r.failures}
    out.update(extra)
    print(json.dumps(out), flush=True)
    sys.exit(EXIT_OK if out["ok"] else EXIT_FAILED)


if __name__ == "__main__":
    main()
