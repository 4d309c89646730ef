/** Errors the CLI reports as one line on stderr with exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const EXIT_OK = 0;
export const EXIT_REPLY_ERROR = 1;
/** check-config, run: the config (or the board file, or a file the config names) is invalid. */
export const EXIT_INVALID_CONFIG = 1;
export const EXIT_USAGE = 2;
/** run: the config is valid but the agent could not start (its outbox cannot be opened, an address is taken...). */
export const EXIT_START_FAILED = 3;

export const USAGE = `afb-edge — wsapi tools and edge agent for AGL / redpesk binders

Usage:
  afb-edge call SPEC VERB [JSON] [--session UUID] [--token T] [--creds C] [--timeout MS]
      Calls VERB and prints the reply as one JSON line {"error":…,"info":…,"data":…}.
      Exit 0 on success, 1 when the reply carries an error, 2 on usage or connection errors.
  afb-edge describe SPEC [--timeout MS]
      Prints the API description JSON (null when the API has none).
  afb-edge listen SPEC --subscribe VERB [JSON] [--subscribe VERB [JSON]]… [--count N]
                  [--session UUID] [--token T] [--reconnect]
      Makes the calls, then prints each event (broadcasts too) as a JSON line
      {"event":"api/name","data":…} until interrupted or N events.
  afb-edge simulate --ws-server SPEC [--ws-server SPEC]… [--api NAME] [--period MS]
      Runs a simulated binder exporting API NAME (default "vehicle"): verbs ping, fail,
      subscribe, unsubscribe, push, broadcast, info; describe; periodic signal events.
  afb-edge run --config FILE [--board NAME]
      The agent: connects to the configured binders and serial links, routes their events to
      MQTT (durable outbox) and to links, takes remote commands, exports the ecu API. SIGHUP
      reloads FILE (an invalid one is rejected). Under systemd: Type=notify (READY=1, STATUS=,
      watchdog). --board NAME (or $AFB_EDGE_BOARD) merges boards/NAME.yaml under FILE.
      Exit 0 after SIGINT/SIGTERM, 1 on an invalid config (or a file it names), 2 on usage
      errors, 3 when a valid config cannot start (outbox, address in use).
  afb-edge demo [--duration S] [--json] [--web [HOST:]PORT]
      Simulated binder + embedded MQTT broker + agent + monitor + the web dashboard (its URL is
      printed; --web picks the address, default 127.0.0.1 on a free port), for S seconds
      (default 15, 0 = until Ctrl-C). demo --wsapi [--count N]: only a simulated binder and a
      wsapi client.
  afb-edge check-config FILE [--board NAME]
      Validates an agent configuration (YAML or JSON) and the files it names (password, TLS, DBC):
      every error with its path, line and a hint; exit 0 when valid (warnings for what only the
      service can see), 1 when not, 2 on usage errors.
  afb-edge can decode --dbc FILE [--dbc FILE]…
      Reads frames on stdin (candump log lines "(1700000000.000000) can0 123#1122", CAN FD "##",
      bare "123#1122", or JSON lines {"id","extended","data"}) and writes one JSON line per frame
      {"id","extended","message","values","raw"} (unknown ids: "message":null). Lines that are not
      frames are reported on stderr with their number. Exit 0, or 1 on a bad DBC file.
  afb-edge can encode --dbc FILE MESSAGE 'JSON'
      Prints the payload (hex) of MESSAGE with the signal values (numbers or VAL_ labels) of JSON.
  afb-edge monitor --broker URL [--device ID]… [--prefix P] [--topic FILTER]… [--count N] [--json]
                   [--username U] [--password-file F] [--ca F] [--cert F] [--key F]
      Subscribes to the agents' topics ({prefix}/{device}/#, prefix afb-edge) and shows live
      events and agent status: a live table on a terminal, JSON lines when piped or --json.
  afb-edge monitor --web [HOST:]PORT --broker URL [--device ID]… [--prefix P] [--token-file F]
                   [--allow-commands] [--silent-after S] [--ui-rate N] [--max-devices N] [--history N]
                   [--username U] [--password-file F] [--ca F] [--cert F] [--key F]
      The fleet dashboard in a browser (docs/dashboard.md): fleet view, device views with live
      messages, charts and a command console (--allow-commands). Binds 127.0.0.1 unless HOST is
      given; any other address needs --token-file (a bearer token for the page and the socket).
  afb-edge ecu-sim --protocol slcan|cobs|ndjson --device PATH [--baud N] [--rate N] [--count N]
                   [--adapter lawicel|canable|usbtin] [--crc crc16|crc32] [--payload json|raw] [--noise N]
      A simulated ECU on a serial device (e.g. a socat pty): slcan as the --adapter firmware answers
      (lawicel, default: CR/BEL, z/Z, Z, F, V, N; canable: the stock CANable firmware, no answers but
      a V text line; usbtin: CR/BEL, V/v, Z, F), OBD-II on 0x7DF; or JSON/raw messages over cobs (crc16 default,
      payload json default) or ndjson (verbs ping, echo, get, set). Periodic frames at --rate per
      second (default 10; half of them counters 0,1,2…), stopping after --count counters (0 = never);
      --noise N adds a garbage burst every N frames. Received messages print as {"rx":…} lines.
      Exit 0 on SIGINT/SIGTERM, 1 when the device fails or disappears, 2 on usage errors.

SPEC: unix:/run/platform/apis/ws/NAME | unix:@NAME | tcp:HOST:PORT/NAME | sd:NAME
      optional ?as-api=NAME, ?abstract=exact|padded|auto (abstract address form, default auto)
Options common to all commands: --log-level debug|info|warn|error (default warn), --help, --version
`;
