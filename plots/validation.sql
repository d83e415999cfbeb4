-- Validation (issue 7): the simulator's predicted makespan (y) against the
-- measured one (x) of `d2moe execute --spec experiments/validation.ini`.
-- A pair is a sim row and the real row the same process wrote right after
-- it (same configuration hash).  Series: planner; every round is a point.
-- Per point errors: `d2moe execute --spec` prints them (median of the
-- rounds' paired errors).
WITH pairs AS (
  SELECT rs.id AS sid, rr.id AS rid
    FROM runs rs JOIN runs rr ON rr.id = rs.id + 1 AND rr.config_hash = rs.config_hash
   WHERE rs.kind = 'execute' AND rs.mode = 'sim' AND rr.mode = 'real' AND rs.status = 'ok'
     AND EXISTS (SELECT 1 FROM params WHERE run_id = rs.id AND key = 'exec.spec' AND value = 'validation')
     -- runs rejected by the kernel-probe gate (the machine changed speed) are left out
     AND coalesce((SELECT value FROM metrics WHERE run_id = rr.id AND name = 'probe_ok'), 1) != 0
     -- and those of a `d2moe validate` round it rejected (probe or busy machine)
     AND NOT EXISTS (SELECT 1 FROM metrics x JOIN metrics a ON a.run_id = x.run_id AND a.name = 'accepted' AND a.value = 0
                      WHERE x.name = 'exec_real_run_id' AND x.value = rr.id))
SELECT pl.value, mr.value, ms.value
  FROM pairs
  JOIN params pl ON pl.run_id = pairs.sid AND pl.key = 'system.plan'
  JOIN metrics ms ON ms.run_id = pairs.sid AND ms.name = 'makespan_s'
  JOIN metrics mr ON mr.run_id = pairs.rid AND mr.name = 'makespan_s'
ORDER BY 1, 2;
