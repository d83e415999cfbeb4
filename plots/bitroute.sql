-- Beyond the paper: throughput against estimated perplexity, one point per
-- (bit-routing policy, budget); series: the policy; column 4 the budget in
-- MB, which bitroute.gp turns into the point's marker (under the fitted
-- rates a policy's budgets give nearly the same point).  A run whose
-- est_ppl is empty (a store without the quantizer's error table) is left
-- out: no x to draw it at (gnuplot stopped on "x range is invalid").
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = :sweep AND variant = :variant),
v AS (SELECT br.value AS policy, p.value AS ppl, t.value AS tps, CAST(bud.value AS REAL) / 1e6 AS mb
      FROM r JOIN runs ON runs.id = r.id AND runs.status = 'ok'
      JOIN params br ON br.run_id = r.id AND br.key = 'sim.bitroute'
      JOIN params bud ON bud.run_id = r.id AND bud.key = 'sim.budget'
      JOIN metrics p ON p.run_id = r.id AND p.name = 'est_ppl' AND p.value IS NOT NULL
      JOIN metrics t ON t.run_id = r.id AND t.name = 'throughput_tps')
SELECT v.policy AS series, v.ppl AS est_ppl, v.tps AS throughput_tps, v.mb AS budget_mb
FROM v
ORDER BY v.policy, v.mb;
