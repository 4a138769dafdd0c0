SELECT code, COUNT(1) AS cnt
FROM www_access
GROUP BY code
ORDER BY code
