#!/bin/sh

echo "param1=$param1"
echo "param2=$param2"
echo "exported_var=$exported_var"
