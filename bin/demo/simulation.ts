// The composition roots' one way into the simulator: loaded only when `--simulated-node` /
// NETPLUMB_SIMULATED_NODE is given, so production runs never load sim/.
export { openSimulatedNode } from '../../sim/simulation.js';
