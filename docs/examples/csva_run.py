# %% [markdown]
# # CSVA: design for yield from Python
# The run of docs/optimization.md (minimax → one-sided ℓ1 yield optimization with IGAT → a 2,000-sample
# verification) in a dozen lines. Cells in the `# %%` format: open it as a notebook in VS Code, or in Jupyter
# with jupytext; `python docs/examples/csva_run.py` runs it as a script. In Jupyter, `run` alone shows the tables.

# %%
import os

import optiyield as oy

problem = oy.load("specs/csva.yaml")
print(problem.design)

# %% Run the spec's steps: every simulation goes to the store, the report and run_summary.json to `out`.
run = problem.run(os.environ.get("OPTIYIELD_OUT", "out/csva"), fresh=True, progress=True)
print(run)

# %% What each step bought, and where the design went.
print(run.steps[["yield_before", "yield_after", "simulations", "wall_seconds"]])
print(run.design)

# %% The verification, per spec; the full report is in run.report_path.
print(run.verify.per_spec[["median", "yield", "low", "high", "violations"]])
print(run.report_path)
