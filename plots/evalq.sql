-- Measured accuracy (d2moe eval): KL divergence of the next-token
-- distributions to FP32 against bits per FFN weight, for the checkpoint of
-- the store's newest eval run.  Series: preset + method (uniform levels,
-- one point per level) and preset + method + routing (a routed mix: one point).
WITH ck AS (SELECT p.value AS name FROM params p
            WHERE p.key = 'eval.checkpoint' AND p.run_id = (SELECT max(id) FROM runs WHERE kind = 'eval' AND status = 'ok')),
r AS (SELECT max(runs.id) AS id FROM runs
      JOIN params c ON c.run_id = runs.id AND c.key = 'eval.checkpoint' AND c.value = (SELECT name FROM ck)
      JOIN params pr ON pr.run_id = runs.id AND pr.key = 'eval.preset'
      JOIN params me ON me.run_id = runs.id AND me.key = 'eval.method'
      JOIN params br ON br.run_id = runs.id AND br.key = 'eval.bitroute'
      JOIN params lv ON lv.run_id = runs.id AND lv.key = 'eval.level'
      WHERE runs.kind = 'eval' AND runs.status = 'ok'
      GROUP BY pr.value, me.value, br.value, lv.value)
SELECT pr.value || ' ' || me.value || CASE WHEN br.value = 'uniform' THEN '' ELSE ' ' || br.value END AS series,
       b.value AS bpw, k.value AS kl, CASE WHEN br.value = 'uniform' THEN 0 ELSE 1 END AS routed
FROM r
JOIN params pr ON pr.run_id = r.id AND pr.key = 'eval.preset'
JOIN params me ON me.run_id = r.id AND me.key = 'eval.method'
JOIN params br ON br.run_id = r.id AND br.key = 'eval.bitroute'
JOIN metrics b ON b.run_id = r.id AND b.name = 'bpw'
JOIN metrics k ON k.run_id = r.id AND k.name = 'kl'
ORDER BY routed, 1, 2;
