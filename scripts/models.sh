#!/usr/bin/env bash
# placeholder: replaced by the model conversion step
exit 0
