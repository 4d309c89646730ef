/**
 * The schema of a board file (boards/*.yaml, boards/README.md). Compiled at
 * development time into generated/board-validator.ts by
 * scripts/gen-config-validator.mjs.
 */
const str = { type: 'string', minLength: 1 };
const devicePath = { type: 'string', pattern: '^/dev/' };

export const BOARD_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['description', 'memory_mb', 'limits'],
  properties: {
    description: str,
    machines: { type: 'array', default: [], items: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' } },
    memory_mb: { type: 'integer', minimum: 128 },
    serial: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        default_device: devicePath,
        devices: { type: 'array', default: [], items: devicePath },
        // systemd DeviceAllow= of the UART drivers (/proc/devices names), added by the drop-in
        // to the unit's DevicePolicy=closed list: e.g. char-ttySC for R-Car SCIFs.
        device_allow: { type: 'array', default: [], items: { type: 'string', pattern: '^char-[A-Za-z0-9_-]+$' } },
      },
    },
    sockets: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        apis_dir: { type: 'string', pattern: '^/' },
        ecu_api: str,
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      required: ['max_old_space_mb'],
      properties: {
        max_old_space_mb: { type: 'integer', minimum: 32 },
        max_semi_space_mb: { type: 'integer', minimum: 1, maximum: 64, default: 1 },
        v8_pool_size: { type: 'integer', minimum: 0, maximum: 16, default: 1 },
        heap_growing_percent: { type: 'integer', minimum: 0, maximum: 300, default: 50 },
        memory_high_mb: { type: 'integer', minimum: 32 },
        memory_max_mb: { type: 'integer', minimum: 32 },
      },
    },
    overlay: { type: 'object', default: {} },
  },
} as const;
