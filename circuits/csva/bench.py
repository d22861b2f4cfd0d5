"""The CSVA testbench (netlist.cir) written with PySpice: `pyspice: bench.py:build` in testbench_pyspice.yaml.

PySpice only writes the netlist text (``str(circuit)``); optiyield's engine runs it, batched, exactly as it
runs netlist.cir. tests/test_pyspice.py checks that both give the same figures to 1e-9.
"""

from pathlib import Path

from PySpice.Spice.Netlist import Circuit
from PySpice.Unit import u_nm, u_pF

MODELS = Path(__file__).resolve().parent.parent / "models" / "ptm45lp.lib"


def build() -> Circuit:
    """NMOS common-source amplifier, resistor load, 1 pF load; .param defaults for the design and statistical
    parameters; operating point and ac analyses."""
    circuit = Circuit("CSVA: common-source voltage amplifier, 45 nm PTM LP (PySpice)")
    circuit.include(str(MODELS))
    for name, value in {"VDD": 1.2, "Vgate": 0.8, "W": "5u", "Rd": "1k", "dvth": 0, "mu": 1}.items():
        circuit.parameter(name, value)
    circuit.V("DD", "vdd", circuit.gnd, "dc {VDD}")
    circuit.V("IN", "vin", circuit.gnd, "dc {Vgate} ac 1")
    circuit.R("D", "vdd", "vout", "{Rd}")
    circuit.C("L", "vout", circuit.gnd, 1 @ u_pF)
    circuit.MOSFET("1", "vout", "vin", circuit.gnd, circuit.gnd, model="nch", w="{W}", l=45 @ u_nm,
                   raw_spice="delvto={dvth} mulu0={mu}")
    circuit.raw_spice = ".temp 27\n.op\n.ac dec 20 1k 100G"
    return circuit
