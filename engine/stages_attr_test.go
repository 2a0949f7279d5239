package engine

import "testing"

// A label's confidence is the probability of that label: a face the model
// calls male with p=0.27 is female with confidence 0.73, not 0.46.
func TestWindowAttributesGenderConfidence(t *testing.T) {
	a := windowAttributes([]*Attr{{Age: 30, AgeConf: 0.5, Male: 0.2}, {Age: 32, AgeConf: 0.5, Male: 0.34}}, nil, nil)
	if a.Gender.Value != "female" || a.Gender.Confidence != 0.73 {
		t.Fatalf("gender %+v, want female 0.73", a.Gender)
	}
	a = windowAttributes([]*Attr{{Age: 30, AgeConf: 0.5, Male: 0.9}}, nil, nil)
	if a.Gender.Value != "male" || a.Gender.Confidence != 0.9 {
		t.Fatalf("gender %+v, want male 0.9", a.Gender)
	}
	if a.Age.Value != 30 {
		t.Fatalf("age %+v", a.Age)
	}
}
