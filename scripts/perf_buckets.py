#!/usr/bin/env python3
"""Where the server's CPU time goes, from a perf profile of the load benchmark.

    MCP_OBO_BENCH_PERF=/tmp/perf.data scripts/bench.sh      # extra HelloTool run under perf
    perf script -i /tmp/perf.data -F comm,tid,ip,sym,dso > /tmp/perf.txt
    python3 scripts/perf_buckets.py /tmp/perf.txt

Buckets each sample by its leaf-most frame that belongs to a known component (allocator,
memcpy and std frames are charged to their caller); kernel samples by syscall path, and
again charged to the user-space caller. Approximate: inlined code counts for the function
it was inlined into.
"""
import sys, re, collections
path = sys.argv[1]
samples = []
cur = None
for line in open(path, errors='replace'):
    line = line.rstrip('\n')
    if not line.strip():
        if cur: samples.append(cur); cur = None
        continue
    if not line.startswith('\t') and not line.startswith(' '):
        cur = {'comm': re.sub(r'\s+\d+\s*$', '', line.strip()), 'frames': []}
        continue
    m = re.match(r'\s*([0-9a-f]+)\s+(.*?)\s+\(([^)]*)\)\s*$', line)
    if m and cur is not None:
        cur['frames'].append((m.group(2), m.group(3)))
if cur: samples.append(cur)
N = len(samples)
GENERIC = ['core::', 'alloc::', 'std::', 'hashbrown', '<alloc::', '<core::', '<std::', 'bytes::', '<bytes::',
           '[unknown]', 'smallvec', 'memchr', 'httparse', 'tracing::instrument::Instrumented', 'TaskLocalFuture',
           '<&', '<T as ', 'indexmap', '<[', 'compiler_builtins', 'tokio::net::', 'tokio_util::util::poll_buf', 'tokio::io::', '<tokio::net', '<tokio::io']
BUCKETS = [
  ('logging/tracing (request log line, spans)', ['tracing_subscriber', 'tracing_core', 'tracing::', 'nu_ansi_term', 'sharded_slab', 'mcp_obo::telemetry', 'tracing_log']),
  ('metrics (prometheus)', ['prometheus']),
  ('crypto / JWT', ['aws_lc', 'jsonwebtoken', 'mcp_obo::jose', 'base64']),
  ('JSON (serde_json, schemars)', ['serde_json', 'serde_core', 'serde::', 'schemars']),
  ('rmcp-actix-web transport', ['rmcp_actix_web']),
  ('rmcp (protocol, service, handler dispatch)', ['rmcp::']),
  ('outbound HTTP to Graph (graph transport; reqwest/hyper only behind a proxy)', ['reqwest', 'hyper', 'h2::', 'mcp_obo::graph', 'tower']),
  ('actix-web HTTP server', ['actix_http', 'actix_web', 'actix_server', 'actix_service', 'actix_router', 'actix_codec', 'actix_rt', 'actix_utils', 'mio::', 'http::', 'url::']),
  ('mcp-obo auth middleware', ['mcp_obo::auth']),
  # moka's frames match no bucket, so they count for their caller (auth or OBO).
  ('mcp-obo OBO cache', ['mcp_obo::obo']),
  ('mcp-obo other (guard, handler, HelloTool)', ['mcp_obo::']),
  ('tokio runtime / channels / tasks', ['tokio', 'futures_', 'opentelemetry', 'tokio_util']),
]
def is_kernel(dso): return 'kernel' in dso
LOG_THREAD = 'tracing-appende'  # tracing_appender's writer thread (name cut to 15 chars)
def user_bucket(frames, comm=''):
    if comm.startswith(LOG_THREAD): return BUCKETS[0][0]
    for sym, dso in frames:
        if is_kernel(dso) or 'libc.so' in dso or 'vdso' in dso or 'ld-linux' in dso: continue
        if any(sym.startswith(g) or g in sym[:40] for g in GENERIC) and not any(p in sym for _, ps in BUCKETS for p in ['mcp_obo::','rmcp','actix','serde_json','tracing_subscriber','prometheus','aws_lc','reqwest','hyper'] if p in sym):
            continue
        for name, pats in BUCKETS:
            if any(p in sym for p in pats): return name
    return 'unattributed (runtime/std only)'
def kernel_bucket(frames):
    syms = ' '.join(s for s, d in frames if is_kernel(d))
    usyms = ' '.join(s for s, d in frames if not is_kernel(d))
    if re.search(r'tcp_|__sys_recvfrom|sock_|inet_|ip_|skb|net_rx|__dev_queue', syms): return 'kernel: TCP over loopback (send/recv)'
    if 'pipe_write' in syms or 'pipe_read' in syms: return 'kernel: pipe write (stderr log lines)'
    if 'futex' in syms: return 'kernel: futex (thread wake-ups/waits)'
    if 'ep_poll' in syms or 'epoll' in syms: return 'kernel: epoll'
    if re.search(r'schedule|finish_task_switch', syms): return 'kernel: scheduler'
    if re.search(r'page_fault|exc_page|mmap|brk|madvise', syms): return 'kernel: memory (page faults, mmap)'
    return 'kernel: other'
comm = collections.Counter(s['comm'] for s in samples)
leaf = collections.Counter()
buckets = collections.Counter()
selfsym = collections.Counter()
for s in samples:
    f = s['frames']
    if not f: continue
    sym, dso = f[0]
    selfsym[(sym[:110], dso.split('/')[-1])] += 1
    if is_kernel(dso):
        leaf['kernel'] += 1
        buckets[kernel_bucket(f) + (' [log writer thread]' if s['comm'].startswith(LOG_THREAD) else '')] += 1
    else:
        if 'libc' in dso:
            if re.search(r'malloc|free|realloc|unlink_chunk|consolidate|calloc|tcache', sym): leaf['libc allocator (malloc/free)'] += 1
            elif re.search(r'mem(move|cpy|set|cmp)', sym): leaf['libc memmove/memcpy/memset'] += 1
            else: leaf['libc other'] += 1
        else:
            leaf['mcp-obo code'] += 1
        buckets[user_bucket(f, s['comm'])] += 1
def pr(title, c):
    print(f'\n{title}')
    for k, v in c.most_common(): print(f'  {100*v/N:5.1f}%  {k}')
print(f'samples: {N}')
pr('threads', comm)
pr('leaf kind', leaf)
pr('buckets (leaf-most owning frame; kernel by syscall path)', buckets)
print('\ntop self symbols')
for (s, d), v in selfsym.most_common(30): print(f'  {100*v/N:5.1f}%  {s}  [{d}]')

def first_user(frames, skip_generic=True):
    out = []
    for sym, dso in frames:
        if is_kernel(dso) or 'libc.so' in dso or dso == '[inlined]' or 'inlined' in dso: continue
        out.append(sym[:120])
        if len(out) == 3: break
    return ' <- '.join(out)
for label, pat in [('memcpy', r'memcpy|memmove'), ('malloc/free', r'malloc|free|unlink_chunk|consolidate|tcache')]:
    c = collections.Counter()
    tot = 0
    for s in samples:
        if s['frames'] and re.search(pat, s['frames'][0][0]) and not is_kernel(s['frames'][0][1]):
            tot += 1
            c[user_bucket(s['frames'])] += 1
    print(f'\n{label}: {100*tot/N:.1f}% of samples, by owner')
    for k, v in c.most_common(8): print(f'  {100*v/N:5.1f}%  {k}')
    c2 = collections.Counter()
    for s in samples:
        if s['frames'] and re.search(pat, s['frames'][0][0]) and not is_kernel(s['frames'][0][1]):
            c2[first_user(s['frames'])] += 1
    for k, v in c2.most_common(8): print(f'      {100*v/N:5.1f}%  {k}')
c = collections.Counter()
for s in samples:
    if s['frames'] and not is_kernel(s['frames'][0][1]) and user_bucket(s['frames']).startswith('tokio'):
        c[first_user(s['frames'])] += 1
print('\ntokio bucket top')
for k, v in c.most_common(10): print(f'  {100*v/N:5.1f}%  {k}')
c = collections.Counter()
for s in samples:
    if s['frames'] and is_kernel(s['frames'][0][1]):
        c[(kernel_bucket(s['frames']), first_user(s['frames']))] += 1
print('\nkernel by user caller')
for k, v in c.most_common(14): print(f'  {100*v/N:5.1f}%  {k}')
c = collections.Counter()
for s in samples:
    if s['frames']: c[user_bucket(s['frames'], s['comm'])] += 1
pr('components including their syscalls (kernel samples given to the user-space caller)', c)
