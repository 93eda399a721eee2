import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { OnairError } from '@onair/shared';
import { publishFile, type DestinationResult } from './relay/file-publish.js';
import { playToStream } from './relay/play-to-file.js';

const HELP = `onair — go live from a browser to any RTMP server, and watch with low latency.

Usage:
  onair serve [options]                     Start the studio, the watch pages and a local RTMP server.
  onair publish [--fast] FILE.flv|- URL [URL…]
                                            Relay an FLV file (or stdin) to one or more RTMP/RTMPS servers at once.
  onair play URL [-o FILE.flv]              Pull a live RTMP/RTMPS stream into an FLV file (stdout without -o).
  onair restream [--follow] SRC_URL URL [URL…]
                                            Pull a live stream and relay it to one or more servers at once.
  onair help [COMMAND]                      Show help for a command.
  onair --version                           Print the version (also -v).

publish
  Sends the file's tags unchanged (timestamps and payloads), paced by their timestamps like
  \`ffmpeg -re\`, to every URL at the same time. FILE \`-\` reads FLV from stdin as it comes
  (\`ffmpeg -re … -f flv - | onair publish - URL\`; the producer sets the pace). A destination
  that fails does not stop the others. Exit status 0 once every destination has received everything and unpublished,
  1 if any destination failed (each is named on stderr), 2 for a usage error. Ctrl-C stops
  reading, unpublishes everywhere and exits 1; a second Ctrl-C quits at once.
    --fast                    send as fast as the servers accept instead of in real time
    --connect-timeout SECONDS give up on a server that has not accepted the stream by then (default 10)

play
  Writes FLV (header, metadata, sequence headers, frames) as the server sends it. Exit status 0
  when the publisher ends the stream, 1 on an error, on Ctrl-C (what was written stays a valid
  FLV file) or when the reader of stdout goes away. Some servers (node-media-server) never say
  that a publisher left, so a stream that has sent nothing for a while also counts as ended.
    -o, --output FILE         write to FILE instead of stdout (- is stdout)
    --idle-end SECONDS        end after this long without media once it has started (default 10, 0 = never)
    --connect-timeout SECONDS give up on a server that has not started the stream by then (default 10)

restream
  Plays SRC_URL and relays it to every URL at once: payloads byte for byte, timestamps rebased to
  start at 0. Destinations connect at once and start at the input's first keyframe. A destination
  that drops is reconnected (2 s, then up to 30 s apart); one refused for good (a wrong key: four
  refusals in a row) fails alone. When the input drops, destinations stay published for the grace
  period and continue from its next keyframe on the same timeline. Exit status 0 when the input
  ended (without --follow) and every destination unpublished, 1 if any destination failed or the
  input could not be played, 2 for a usage error. Ctrl-C unpublishes everywhere and exits 1
  (0 with --follow, where it is the way to stop).
    --follow                  keep going through input ends and failures (reconnect to SRC_URL);
                              past the grace period destinations unpublish, and publish again
                              when the input is back
    --grace SECONDS           how long destinations stay published while the input is away (default 10)
    --idle-end SECONDS        without --follow: the input has ended after this long without media
                              (default 10; some servers never say that a publisher left)
    --connect-timeout SECONDS give up on a server that has not answered by then (default 10)

URLs look like rtmp://host[:port]/app/streamkey or rtmps://host[:443]/app/streamkey; stream keys
are never printed (shown as ***). For a private CA on rtmps://, set NODE_EXTRA_CA_CERTS=ca.pem.
`;

const PUBLISH_HELP = HELP.slice(HELP.indexOf('publish\n'), HELP.indexOf('play\n  Writes'));
const PLAY_HELP = HELP.slice(HELP.indexOf('play\n  Writes'), HELP.indexOf('restream\n  Plays'));
const RESTREAM_HELP = HELP.slice(HELP.indexOf('restream\n  Plays'), HELP.indexOf('URLs look like'));

class UsageError extends Error {}

/** The package's version: package.json sits two levels above bridge/dist, in the repository and in an installed package. */
function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

function seconds(option: string, text: string, min: number): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < min) throw new UsageError(`${option} takes a number of seconds${min > 0 ? ' > 0' : ' ≥ 0'}, not "${text}"`);
  return n;
}

function say(line: string): void {
  process.stderr.write(`onair: ${line}\n`);
}

function errorText(err: unknown): string {
  if (err instanceof OnairError) return `${err.message} [${err.code}]`;
  return err instanceof Error ? err.message : String(err);
}

async function publishCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      fast: { type: 'boolean', default: false },
      'connect-timeout': { type: 'string', default: '10' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(PUBLISH_HELP);
    return 0;
  }
  const [file, ...urls] = positionals;
  if (file === undefined || urls.length === 0) throw new UsageError('publish needs FILE.flv (or - for stdin) and at least one URL');

  const results: DestinationResult[] = await publishFile(file, urls, {
    fast: values.fast,
    session: { connectTimeoutMs: seconds('--connect-timeout', values['connect-timeout'], 0.001) * 1000 },
    onEvent: (event) => {
      if (event.kind === 'live') say(`${event.url} — publishing`);
      else if (event.kind === 'failed') say(`${event.url} — failed: ${errorText(event.error)}`);
      else if (event.error !== undefined) say(`${event.url} — asked to move to ${event.to || 'an unusable URL'}, staying: ${errorText(event.error)}`);
      else say(`${event.url} — moved to ${event.to}`);
    },
  });
  let failed = 0;
  for (const r of results) {
    if (r.error === undefined) say(`${r.url} — done: ${r.tags} tags, ${(r.bytes / 1e6).toFixed(2)} MB`);
    else failed++;
  }
  if (failed > 0) {
    say(`${failed} of ${results.length} destination${results.length > 1 ? 's' : ''} failed`);
    return 1;
  }
  return 0;
}

async function playCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      output: { type: 'string', short: 'o' },
      'idle-end': { type: 'string', default: '10' },
      'connect-timeout': { type: 'string', default: '10' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(PLAY_HELP);
    return 0;
  }
  const [url, ...extra] = positionals;
  if (url === undefined || extra.length > 0) throw new UsageError('play needs exactly one URL');
  const summary = await playToStream(url, values.output === '-' ? undefined : values.output, {
    idleEndMs: seconds('--idle-end', values['idle-end'], 0) * 1000,
    connectTimeoutMs: seconds('--connect-timeout', values['connect-timeout'], 0.001) * 1000,
  });
  say(`${summary.url} — stream ended: ${summary.tags} tags, ${(summary.bytes / 1e6).toFixed(2)} MB`);
  return 0;
}

async function restreamCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      follow: { type: 'boolean', default: false },
      grace: { type: 'string', default: '10' },
      'idle-end': { type: 'string', default: '10' },
      'connect-timeout': { type: 'string', default: '10' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(RESTREAM_HELP);
    return 0;
  }
  const [source, ...urls] = positionals;
  if (source === undefined || urls.length === 0) throw new UsageError('restream needs SRC_URL and at least one destination URL');
  const { runRestream } = await import('./restream/restream-command.js');
  const { results, interrupted } = await runRestream(source, urls, {
    follow: values.follow,
    graceMs: seconds('--grace', values.grace, 0) * 1000,
    idleEndMs: seconds('--idle-end', values['idle-end'], 0) * 1000,
    connectTimeoutMs: seconds('--connect-timeout', values['connect-timeout'], 0.001) * 1000,
    log: say,
    onEvent: (s) => {
      if (s.state === 'live') say(`${s.url} — publishing`);
      else if (s.state === 'retrying') say(`${s.url} — retrying: ${s.reason ?? ''}`);
      else if (s.state === 'failed') say(`${s.url} — failed: ${s.reason ?? ''}`);
    },
  });
  let failed = 0;
  for (const r of results) {
    if (r.state !== 'failed') say(`${r.url} — done: ${(r.bytes / 1e6).toFixed(2)} MB`);
    else {
      failed++;
      say(`${r.url} — failed: ${r.reason ?? ''}`);
    }
  }
  if (failed > 0) {
    say(`${failed} of ${results.length} destination${results.length > 1 ? 's' : ''} failed`);
    return 1;
  }
  if (interrupted && !values.follow) {
    say('interrupted');
    return 1;
  }
  return 0;
}

/** Runs the CLI; resolves to the process exit status. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'publish':
        return await publishCommand(rest);
      case 'play':
        return await playCommand(rest);
      case 'restream':
        return await restreamCommand(rest);
      case 'serve': {
        // Loaded only here: the server pulls in much more than publish and play need.
        const { SERVE_HELP, runServe } = await import('./serve.js');
        if (rest.includes('--help') || rest.includes('-h')) {
          process.stdout.write(SERVE_HELP);
          return 0;
        }
        await runServe(rest, process.env);
        return 0;
      }
      case 'help':
        if (rest[0] === 'serve') process.stdout.write((await import('./serve.js')).SERVE_HELP);
        else process.stdout.write(({ publish: PUBLISH_HELP, play: PLAY_HELP, restream: RESTREAM_HELP } as Record<string, string>)[rest[0] ?? ''] ?? HELP);
        return 0;
      case '--version':
      case '-v':
        process.stdout.write(`${version()}\n`);
        return 0;
      case undefined:
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        return 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))) {
      say(`${err.message}\nRun \`onair --help\` for usage.`);
      return 2;
    }
    say(errorText(err));
    return 1;
  }
}
