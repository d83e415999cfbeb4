-- Accuracy table: estimated WikiText2 perplexity of each method (est_ppl; the model is in src/results/accuracy.h), Fig. 10 runs, mean over budgets
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = 'fig10' AND variant = :variant)
SELECT mo.value AS model, pol.value AS method, printf('%.3f', avg(p.value)) AS est_ppl,
       printf('%.2f', avg(b.value)) AS avg_bits, count(*) AS runs
FROM r JOIN runs ON runs.id = r.id AND runs.status = 'ok'
JOIN params mo ON mo.run_id = r.id AND mo.key = 'model.name'
JOIN params pol ON pol.run_id = r.id AND pol.key = 'sim.policy'
JOIN metrics p ON p.run_id = r.id AND p.name = 'est_ppl'
LEFT JOIN metrics b ON b.run_id = r.id AND b.name = 'avg_bits'
GROUP BY 1, 2 ORDER BY 1, 3;
