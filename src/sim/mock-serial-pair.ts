/**
 * Two ends of a pretend serial line on @serialport/binding-mock, for the demo
 * on machines without socat: `binding` is what the agent's link opens (one
 * mock device, `path`), `ecuSide` is a Duplex for the simulated ECU. What the
 * agent writes comes out of `ecuSide`; what the ECU writes into it is what
 * the agent's port reads.
 */
import { Duplex } from 'node:stream';
import type { BindingInterface } from '@serialport/bindings-cpp';
// binding-mock's package "exports" give ESM importers no types: take its CommonJS build, typed by its index.d.ts.
import type { MockBindingInterface, MockPortBinding } from '@serialport/binding-mock' with { 'resolution-mode': 'require' };
import { lazyRequire } from '../util/lazy-require.js';

const bindingMock = lazyRequire<{ MockBinding: MockBindingInterface }>('@serialport/binding-mock');

export interface MockSerialPair {
  path: string;
  binding: BindingInterface;
  ecuSide: Duplex;
}

export function mockSerialPair(path: string): MockSerialPair {
  const { MockBinding } = bindingMock();
  MockBinding.createPort(path, { echo: false, record: false });
  let agentPort: MockPortBinding | undefined;
  const ecuSide = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, done) {
      // Bytes sent while the agent's port is closed are lost, as on a real line.
      if (agentPort?.isOpen) agentPort.emitData(chunk);
      done();
    },
  });
  const binding: BindingInterface = {
    list: () => MockBinding.list(),
    async open(options) {
      const port = await MockBinding.open(options);
      const write = port.write.bind(port);
      port.write = async (buf: Buffer) => {
        await write(buf);
        ecuSide.push(Buffer.from(buf));
      };
      agentPort = port;
      return port;
    },
  };
  return { path, binding, ecuSide };
}
