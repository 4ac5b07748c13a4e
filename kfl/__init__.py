"""KFL, the Kubeshark Filter Language: parse, validate and evaluate queries against items. No I/O."""
