#!/usr/bin/env node
require("../dist/mirrorfarm-agent.js");
