-- Validation (issue 18): the simulator's predicted makespan (y) against the
-- measured one (x), one point per accepted round of the latest `d2moe
-- validate` session: the rounds `d2moe validate --from` judges
-- (host/valstore.c): R = the last round, S = its validate.session, and the
-- rounds of that session; in stores from before validate.session, the
-- rounds after Q, the last point run before R.  Rejected rounds and earlier
-- sessions are left out.  Series: planner (system.plan of the round's real
-- execute run).  Columns: planner, real makespan (s), simulated makespan
-- (s), the session's bound (percent: validate.bound_pct of its point runs,
-- written after its last round; 10, validate's default --bound, when it
-- stored none, e.g. interrupted), 1 when that bound was stored, else 0.
WITH R AS (SELECT coalesce(max(id), 0) AS r FROM runs WHERE kind = 'validate' AND mode = 'round'),
 Q AS (SELECT coalesce(max(id), 0) AS q FROM runs WHERE kind = 'validate' AND mode = 'point' AND id < (SELECT r FROM R)),
 S AS (SELECT (SELECT value FROM params WHERE run_id = (SELECT r FROM R) AND key = 'validate.session') AS s),
 B AS (SELECT (SELECT CAST(value AS REAL) FROM params WHERE key = 'validate.bound_pct'
                  AND run_id = (SELECT min(id) FROM runs WHERE kind = 'validate' AND mode = 'point' AND id > (SELECT r FROM R))) AS b),
 rounds AS (
  SELECT v.id FROM runs v
   WHERE v.kind = 'validate' AND v.mode = 'round' AND v.id <= (SELECT r FROM R)
     AND CASE WHEN (SELECT s FROM S) IS NULL THEN v.id > (SELECT q FROM Q)
         ELSE (SELECT value FROM params WHERE run_id = v.id AND key = 'validate.session') = (SELECT s FROM S) END)
SELECT coalesce(pl.value, 'unknown') AS planner, mr.value AS real_s, ms.value AS sim_s,
       coalesce((SELECT b FROM B), 10) AS bound_pct, (SELECT b FROM B) IS NOT NULL AS bound_stored
  FROM rounds
  JOIN metrics a ON a.run_id = rounds.id AND a.name = 'accepted' AND a.value != 0
  JOIN metrics mr ON mr.run_id = rounds.id AND mr.name = 'real_makespan_s'
  JOIN metrics ms ON ms.run_id = rounds.id AND ms.name = 'sim_makespan_s'
  LEFT JOIN metrics x ON x.run_id = rounds.id AND x.name = 'exec_real_run_id'
  LEFT JOIN params pl ON pl.run_id = CAST(x.value AS INTEGER) AND pl.key = 'system.plan'
ORDER BY 1, 2;
