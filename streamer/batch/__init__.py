"""Batch production: many render scripts, rendered as Ray tasks across a cluster (or one by one here).

`jobs` turns a directory or glob of scripts into validated render jobs (a bad script becomes a failure
naming its file and line, and the others still render); `task` renders one job anywhere, returning the
video bytes and raw-frame hashes; `runner` spreads the jobs over Ray with retries, or renders them in
this process when Ray is not installed. Ray is the optional extra `stagecast[station]`.
"""
